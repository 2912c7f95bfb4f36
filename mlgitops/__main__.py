from mlgitops.cli import main

main()
