"""Front-end code of the live review widgets: plain ES modules and CSS, no bundler.

The top-level ``widgets/`` folder ships inside the package as ``livereview.static``;
:func:`livereview.ui.assets.asset_path` finds its files.
"""
