// Placeholder entry point; the agent host is composed in the agent issue.
return 0;
