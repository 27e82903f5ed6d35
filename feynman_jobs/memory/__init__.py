"""What consolidation produces: memory records and the vector store they are searched in."""
