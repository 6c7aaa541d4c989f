"""The extract stage: pick a train/val subset of CAD models that all parse and build.

``sources`` finds the models (a DeepCAD root, a flat folder of DeepCAD files, or the synthetic
generator), ``sampling`` orders them by seed, ``check`` parses and builds them in a worker
pool, ``selection`` fills each split to its exact size, and ``writer`` writes the dataset
folder atomically. ``python -m stages.extract`` ties them together.
"""
