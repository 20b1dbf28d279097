"""One training run, as a recipe in six modules:

- `config`: RunConfig (torch-free) and its `identity()`, what makes two runs the same run;
- `plan`: `plan_run` / `check_config`, the sized model, steps and FLOPs, without training;
- `state`: RunState, the loop's bookkeeping (step, curve, wall times, divergence);
- `checkpoint`: save and load (the tensors and the RunState), and the --init-from checkpoint;
- `run`: `train()`, setup -> the loop -> the result;
- `result`: RunResult, the typed record in result.json and the store.
`throughput` holds the speed figures (model FLOPs per token, MFU)."""
