"""The experiment grid on a cluster: SLURM job arrays (``kedro grid ...``) and SkyPilot task files.

``config`` types ``params:cluster`` (conf/*/parameters_cluster.yml), ``plan``
turns the registered pipelines into jobs and renders their sbatch scripts,
``slurm`` talks to ``sbatch``/``squeue``/``scontrol``, ``session`` pins one
save version for every job of a grid run. See docs/CLUSTER.md.
"""
