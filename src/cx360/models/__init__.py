"""Models over profiles and plain tables: customer value, influence."""
