"""One training run, as a recipe in five modules:

- `config`: RunConfig (torch-free) and its `identity()`, what makes two runs the same run;
- `plan`: `plan_run` / `check_config`, the sized model, steps and FLOPs, without training;
- `checkpoint`: save and load (and the --init-from checkpoint);
- `run`: `train()`, setup -> the loop -> the result;
- `result`: RunResult, the typed record in result.json and the store."""
