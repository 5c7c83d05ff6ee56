"""Following log files on disk: inotify on their folders, and reading them in budgeted passes."""
