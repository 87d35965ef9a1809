"""Long-running participants built on the client facade: microengine, balance manager, devnet roles."""
