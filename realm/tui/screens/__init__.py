"""One module a screen; each draws a ``RealmView`` it is handed by the app."""
