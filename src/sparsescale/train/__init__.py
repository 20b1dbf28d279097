"""One training run: `train.config.RunConfig` (torch-free) and
`train.run.check_config` / `train.run.train`."""
