from ogshot.cli import main

main()
