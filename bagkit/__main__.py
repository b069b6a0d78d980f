"""python -m bagkit: the command line."""
from bagkit.cli import main

if __name__ == "__main__":
    main()
