"""Linux desktop integration files, installed as ``app.linux`` for ``socketeer
install-desktop`` (udev rules, .desktop entry, AppStream metainfo)."""
