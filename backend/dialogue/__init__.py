"""The dialogue engine's backend side: turns, flow and booking ports, understanding, content, simulator."""
