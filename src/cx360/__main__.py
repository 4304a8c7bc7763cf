from cx360.cli import main

main()
