// Command bootstrap is the fixture SLA sweep Lambda.
package main

func main() {}
