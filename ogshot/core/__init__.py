"""What everything else stands on: errors, settings and their environment variables, image formats,
the version, and small utilities. Imports nothing of ogshot's, and neither Playwright nor pyvips."""
