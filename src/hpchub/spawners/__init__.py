"""The JupyterHub side: spawners that start users' servers on the site's machines."""
