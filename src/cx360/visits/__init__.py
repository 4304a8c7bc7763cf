"""Visit analytics: who comes to malls, branches and stores, how often, from where, for how long, buying what."""
