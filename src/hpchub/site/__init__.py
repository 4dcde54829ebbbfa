"""The demo site: a real small HPC site (Slurm, sshd login nodes, a hub side) on one
Debian machine, for the demo and for the integration tests. Root only."""
