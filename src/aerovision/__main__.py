"""``python -m aerovision``: the ``aerovision`` command."""

from aerovision.cli import main

if __name__ == "__main__":
    main(prog_name="aerovision")
