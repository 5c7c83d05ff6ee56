"""The functional core: decisions as pure functions over plain data, tested without processes."""
