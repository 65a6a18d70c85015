from escpro.cli import main

main()
