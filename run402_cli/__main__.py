from run402_cli.app import main

main()
