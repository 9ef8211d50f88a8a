"""Release, changelog and workspace tools of the cc monorepo (not a distribution)."""
