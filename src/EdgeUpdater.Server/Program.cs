// Placeholder entry point; the server host is composed in the server issue.
return 0;
