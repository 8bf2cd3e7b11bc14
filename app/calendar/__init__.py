"""The official working-day calendar (调休) as the API shows and loads it."""
