"""The web console (指挥台) served at /console: the built single-page app and its assets."""
