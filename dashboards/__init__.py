"""The Panel/Bokeh web dashboard. It runs in its own process and never inside the actor system."""
