// Photos are resized on the device before they are saved (longest side 1600 px, JPEG 0.82): a
// phone's 4000 px photo of 5 MB becomes ~300 KB, and the upload fits a weak mobile link.
export const MAX_SIDE = 1600;

export async function resize(file, max = MAX_SIDE, quality = 0.82) {
  const bmp = await createImageBitmap(file); // honours the EXIF orientation
  const s = Math.min(1, max / Math.max(bmp.width, bmp.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bmp.width * s));
  canvas.height = Math.max(1, Math.round(bmp.height * s));
  canvas.getContext('2d').drawImage(bmp, 0, 0, canvas.width, canvas.height);
  bmp.close();
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('照片无法处理'))), 'image/jpeg', quality),
  );
}
