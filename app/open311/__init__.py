"""Open311 GeoReport v2: the standard door for hotlines, residents' QR codes and departments'
own systems. Requests that enter here become normal cases (the same intake, idempotency,
duplicate suggestions and loop) with their channel recorded."""
