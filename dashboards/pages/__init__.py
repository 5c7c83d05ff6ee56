"""One module per dashboard page; each builds its view for one browser session."""
