using System.Text;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>Which bootloader's script language a <see cref="BootScript"/> is parsed as.</summary>
internal enum BootScriptDialect
{
    /// <summary>U-Boot's hush shell (boot.scr).</summary>
    UBootHush,

    /// <summary>GRUB 2 script (grub.cfg).</summary>
    Grub,
}

/// <summary>The script uses syntax the simulator does not implement, or is malformed.</summary>
internal sealed class BootScriptException : Exception
{
    public BootScriptException(string message)
        : base(message)
    {
    }

    public BootScriptException()
    {
    }

    public BootScriptException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>One piece of a word: literal text, or a variable reference, quoted or not.</summary>
internal sealed record WordPart(string Text, bool IsVariable, bool Quoted);

/// <summary>A shell word as written: its parts, and the line it starts on.</summary>
internal sealed record Word(IReadOnlyList<WordPart> Parts, int Line)
{
    /// <summary>The word's text when it is one unquoted literal (how reserved words are recognized).</summary>
    public string? BareLiteral => Parts is [{ IsVariable: false, Quoted: false } only] ? only.Text : null;
}

/// <summary>A parsed statement of the subset both boot scripts use.</summary>
internal abstract record Statement(int Line);

internal sealed record CommandStatement(IReadOnlyList<Word> Words, int Line) : Statement(Line);

internal sealed record IfStatement(
    IReadOnlyList<(IReadOnlyList<Statement> Condition, IReadOnlyList<Statement> Body)> Branches,
    IReadOnlyList<Statement>? Else,
    int Line) : Statement(Line);

internal sealed record ForStatement(string Variable, IReadOnlyList<Word> Items, IReadOnlyList<Statement> Body, int Line)
    : Statement(Line);

internal sealed record MenuEntryStatement(IReadOnlyList<Word> Title, IReadOnlyList<Statement> Body, int Line)
    : Statement(Line);

/// <summary>
/// Parser for the part of U-Boot hush and GRUB script that the EdgeUpdater boot scripts use: commands,
/// <c>;</c> and newlines, comments, single and double quotes, <c>$name</c> and <c>${name}</c>,
/// <c>if/elif/else/fi</c>, <c>for ... in ...; do ...; done</c> and (GRUB) <c>menuentry ... { ... }</c>.
/// Anything else (pipes, redirections, <c>&amp;&amp;</c>, functions, subshells) is rejected, so a script that
/// grows beyond what the simulation models fails its tests instead of being simulated wrongly.
/// </summary>
internal sealed class BootScript
{
    private readonly List<Token> _tokens;
    private readonly BootScriptDialect _dialect;
    private int _position;

    private BootScript(List<Token> tokens, BootScriptDialect dialect)
    {
        _tokens = tokens;
        _dialect = dialect;
    }

    private enum TokenKind
    {
        Word,
        Separator,
        End,
    }

    /// <summary>Parses <paramref name="text"/> into statements.</summary>
    public static IReadOnlyList<Statement> Parse(string text, BootScriptDialect dialect)
    {
        var parser = new BootScript(Tokenize(text), dialect);
        var statements = parser.ParseList([]);
        if (parser.Current.Kind != TokenKind.End)
        {
            throw new BootScriptException($"line {parser.Current.Line}: unexpected '{parser.Current.Word?.BareLiteral}'");
        }

        return statements;
    }

    private Token Current => _tokens[_position];

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var line = 1;
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '\n')
            {
                tokens.Add(new Token(TokenKind.Separator, null, line));
                line++;
                i++;
            }
            else if (c == ';')
            {
                tokens.Add(new Token(TokenKind.Separator, null, line));
                i++;
            }
            else if (c is ' ' or '\t' or '\r')
            {
                i++;
            }
            else if (c == '#')
            {
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
            }
            else if (c is '|' or '&' or '<' or '>' or '(' or ')' or '`')
            {
                throw new BootScriptException($"line {line}: '{c}' (pipes, redirections, &&/||, subshells) is not simulated");
            }
            else
            {
                var startLine = line;
                tokens.Add(new Token(TokenKind.Word, ReadWord(text, ref i, ref line), startLine));
            }
        }

        tokens.Add(new Token(TokenKind.End, null, line));
        return tokens;
    }

    private static Word ReadWord(string text, ref int i, ref int line)
    {
        var startLine = line;
        var parts = new List<WordPart>();
        var literal = new StringBuilder();
        void FlushLiteral(bool quoted)
        {
            if (literal.Length > 0)
            {
                parts.Add(new WordPart(literal.ToString(), IsVariable: false, quoted));
                literal.Clear();
            }
        }

        while (i < text.Length)
        {
            var c = text[i];
            if (c is ' ' or '\t' or '\r' or '\n' or ';')
            {
                break;
            }

            if (c is '|' or '&' or '<' or '>' or '`')
            {
                throw new BootScriptException($"line {line}: '{c}' is not simulated");
            }

            if (c == '\'')
            {
                FlushLiteral(quoted: false);
                var end = text.IndexOf('\'', i + 1);
                if (end < 0)
                {
                    throw new BootScriptException($"line {line}: unterminated single quote");
                }

                var quotedText = text[(i + 1)..end];
                line += quotedText.Count(ch => ch == '\n');
                parts.Add(new WordPart(quotedText, IsVariable: false, Quoted: true));
                i = end + 1;
            }
            else if (c == '"')
            {
                FlushLiteral(quoted: false);
                i++;
                while (true)
                {
                    if (i >= text.Length)
                    {
                        throw new BootScriptException($"line {startLine}: unterminated double quote");
                    }

                    var q = text[i];
                    if (q == '"')
                    {
                        i++;
                        break;
                    }

                    if (q == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$')
                    {
                        literal.Append(text[i + 1]);
                        i += 2;
                    }
                    else if (q == '$')
                    {
                        FlushLiteral(quoted: true);
                        parts.Add(new WordPart(ReadVariableName(text, ref i, line), IsVariable: true, Quoted: true));
                    }
                    else
                    {
                        if (q == '\n')
                        {
                            line++;
                        }

                        literal.Append(q);
                        i++;
                    }
                }

                FlushLiteral(quoted: true);
                if (parts.Count == 0 || parts[^1] is { IsVariable: true })
                {
                    // "" and "...${x}" still make a (possibly empty) quoted field.
                    parts.Add(new WordPart(string.Empty, IsVariable: false, Quoted: true));
                }
            }
            else if (c == '$')
            {
                FlushLiteral(quoted: false);
                parts.Add(new WordPart(ReadVariableName(text, ref i, line), IsVariable: true, Quoted: false));
            }
            else if (c == '\\')
            {
                throw new BootScriptException($"line {line}: backslash escapes outside double quotes are not simulated");
            }
            else
            {
                literal.Append(c);
                i++;
            }
        }

        FlushLiteral(quoted: false);
        return new Word(parts, startLine);
    }

    private static string ReadVariableName(string text, ref int i, int line)
    {
        // At '$'.
        i++;
        if (i < text.Length && text[i] == '{')
        {
            var end = text.IndexOf('}', i);
            if (end < 0)
            {
                throw new BootScriptException($"line {line}: unterminated ${{");
            }

            var name = text[(i + 1)..end];
            if (name.Length == 0 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
            {
                throw new BootScriptException($"line {line}: ${{{name}}} is not a plain variable reference");
            }

            i = end + 1;
            return name;
        }

        var start = i;
        while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
        {
            i++;
        }

        if (i == start)
        {
            throw new BootScriptException($"line {line}: lone '$'");
        }

        return text[start..i];
    }

    private List<Statement> ParseList(HashSet<string> terminators)
    {
        var statements = new List<Statement>();
        while (true)
        {
            while (Current.Kind == TokenKind.Separator)
            {
                _position++;
            }

            if (Current.Kind == TokenKind.End)
            {
                return statements;
            }

            var keyword = Current.Word!.BareLiteral;
            if (keyword is not null && terminators.Contains(keyword))
            {
                return statements;
            }

            statements.Add(ParseStatement());
        }
    }

    private Statement ParseStatement()
    {
        var word = Current.Word!;
        switch (word.BareLiteral)
        {
            case "if":
                return ParseIf();
            case "for":
                return ParseFor();
            case "menuentry" when _dialect == BootScriptDialect.Grub:
                return ParseMenuEntry();
            case "then" or "elif" or "else" or "fi" or "do" or "done" or "}":
                throw new BootScriptException($"line {word.Line}: unexpected '{word.BareLiteral}'");
            case "while" or "until" or "case" or "function" or "{" or "submenu" or "source" or "configfile":
                throw new BootScriptException($"line {word.Line}: '{word.BareLiteral}' is not simulated");
            default:
                var words = new List<Word>();
                while (Current.Kind == TokenKind.Word)
                {
                    words.Add(Current.Word!);
                    _position++;
                }

                return new CommandStatement(words, word.Line);
        }
    }

    private IfStatement ParseIf()
    {
        var line = Current.Line;
        var branches = new List<(IReadOnlyList<Statement>, IReadOnlyList<Statement>)>();
        List<Statement>? elseBody = null;
        Expect("if");
        while (true)
        {
            var condition = ParseList(["then"]);
            Expect("then");
            var body = ParseList(["elif", "else", "fi"]);
            branches.Add((condition, body));
            var next = Current.Word?.BareLiteral;
            if (next is not ("elif" or "else" or "fi"))
            {
                throw new BootScriptException($"line {line}: this if has no fi");
            }

            _position++;
            if (next == "elif")
            {
                continue;
            }

            if (next == "else")
            {
                elseBody = ParseList(["fi"]);
                Expect("fi");
            }

            return new IfStatement(branches, elseBody, line);
        }
    }

    private ForStatement ParseFor()
    {
        var line = Current.Line;
        Expect("for");
        var variable = Current.Word?.BareLiteral ?? throw new BootScriptException($"line {line}: for needs a variable name");
        _position++;
        Expect("in");
        var items = new List<Word>();
        while (Current.Kind == TokenKind.Word)
        {
            items.Add(Current.Word!);
            _position++;
        }

        while (Current.Kind == TokenKind.Separator)
        {
            _position++;
        }

        Expect("do");
        var body = ParseList(["done"]);
        Expect("done");
        return new ForStatement(variable, items, body, line);
    }

    private MenuEntryStatement ParseMenuEntry()
    {
        var line = Current.Line;
        Expect("menuentry");
        var title = new List<Word>();
        while (Current.Kind == TokenKind.Word && Current.Word!.BareLiteral != "{")
        {
            title.Add(Current.Word!);
            _position++;
        }

        Expect("{");
        var body = ParseList(["}"]);
        Expect("}");
        return new MenuEntryStatement(title, body, line);
    }

    private void Expect(string keyword)
    {
        if (Current.Kind != TokenKind.Word || Current.Word!.BareLiteral != keyword)
        {
            throw new BootScriptException($"line {Current.Line}: '{keyword}' expected");
        }

        _position++;
    }

    private sealed record Token(TokenKind Kind, Word? Word, int Line);
}
