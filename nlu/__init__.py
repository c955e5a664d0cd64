"""Understanding patient text: deterministic parsers and safety rules (pure), and the Rasa NLU project."""
