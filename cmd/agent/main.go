package main

// Placeholder until the agent foundation lands.
func main() {}
