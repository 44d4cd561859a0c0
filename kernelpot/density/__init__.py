"""Electron-density utilities: auxiliary Gaussian basis, integration grids, cube files."""
