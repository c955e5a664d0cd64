"""State changes as named verbs (`do_*`) that write their audit rows in the same transaction."""
