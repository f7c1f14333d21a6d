from sfbench.cli import main

raise SystemExit(main())
