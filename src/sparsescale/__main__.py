from sparsescale.cli import main

main()
