"""Staff authentication, field encryption and identifier normalisation."""
