"""``python -m noa_omics.cli`` = ``noa-omics``."""

from ._main import main

if __name__ == "__main__":
    main()
