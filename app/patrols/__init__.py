"""Field work (巡查、打卡、走访): patrols with their tracks, coverage of grids, check-ins at fixed
points, visits to buildings. See docs/patrols.md."""
