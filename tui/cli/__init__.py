"""The command line: argv to Options, then a library command, headless turns or the app."""
