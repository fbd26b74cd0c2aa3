from blurgen.cli import main

main()
