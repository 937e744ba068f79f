"""Key rotation (``tilfreds keys rotate``, ``tilfreds keys status``). Every sealed column is
declared once in ``sealed.py``; ``service.py`` moves values to the current key; ``status.py`` says
what each key still holds and whether it can be dropped."""
