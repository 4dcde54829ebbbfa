"""hpchub: JupyterHub plugins and tools that give an HPC centre's users Jupyter on the
centre's machines."""

__version__ = "0.2.0"
