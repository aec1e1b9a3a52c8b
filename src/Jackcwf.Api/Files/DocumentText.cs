using System.IO.Compression;
using System.Text;
using DocumentFormat.OpenXml.Packaging;
using UglyToad.PdfPig;
using UglyToad.PdfPig.DocumentLayoutAnalysis.TextExtractor;
using W = DocumentFormat.OpenXml.Wordprocessing;

namespace Jackcwf.Api.Files;

/// <summary>
/// What an upload is, judged by its bytes (never its name or the client's Content-Type), and its
/// text: PdfPig for PDF, the Open XML SDK for DOCX, strict UTF-8 for text and Markdown.
/// </summary>
public static class DocumentText
{
    public const string PlainText = "text/plain";
    public const string Markdown = "text/markdown";
    public const string Pdf = "application/pdf";
    public const string Docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

    // Decompressed text of one DOCX part: a small zip can expand enormously (a "zip bomb").
    private const long MaxDocxPartChars = 64L * 1024 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The allowed type the content is, or null when it is none of them.</summary>
    public static string? Detect(ReadOnlySpan<byte> data, string fileName)
    {
        // PDF readers accept the header anywhere in the first kilobyte.
        if (data[..Math.Min(data.Length, 1024)].IndexOf("%PDF-"u8) >= 0)
        {
            return Pdf;
        }
        if (data.StartsWith("PK\u0003\u0004"u8))
        {
            return IsDocx(data) ? Docx : null;
        }
        if (IsText(data))
        {
            var ext = Path.GetExtension(fileName).ToLowerInvariant();
            return ext is ".md" or ".markdown" ? Markdown : PlainText;
        }
        return null;
    }

    /// <summary>The text of a document of <paramref name="contentType"/>; throws <see cref="DocumentException"/> with a reason a user can read.</summary>
    public static string Extract(byte[] data, string contentType) => contentType switch
    {
        Pdf => ExtractPdf(data),
        Docx => ExtractDocx(data),
        _ => Decode(data),
    };

    private static bool IsDocx(ReadOnlySpan<byte> data)
    {
        try
        {
            using var zip = new ZipArchive(new MemoryStream(data.ToArray(), writable: false), ZipArchiveMode.Read);
            return zip.GetEntry("[Content_Types].xml") is not null && zip.GetEntry("word/document.xml") is not null;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    private static bool IsText(ReadOnlySpan<byte> data)
    {
        try
        {
            var text = StrictUtf8.GetString(data);
            // Binary formats decode as UTF-8 now and then; their control characters give them away.
            foreach (var c in text)
            {
                if (char.IsControl(c) && c is not ('\t' or '\n' or '\r' or '\f'))
                {
                    return false;
                }
            }
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static string Decode(byte[] data)
    {
        var text = StrictUtf8.GetString(data);
        return text.Length > 0 && text[0] == '\uFEFF' ? text[1..] : text;
    }

    private static string ExtractPdf(byte[] data)
    {
        try
        {
            using var pdf = PdfDocument.Open(data);
            var text = new StringBuilder();
            foreach (var page in pdf.GetPages())
            {
                text.Append(ContentOrderTextExtractor.GetText(page)).Append("\n\n");
            }
            return text.ToString();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // PdfPig throws many types for damaged, encrypted or unusual files; the user needs only the outcome.
            throw new DocumentException("The PDF could not be read: it is damaged, encrypted or uses features the reader does not support.", e);
        }
    }

    private static string ExtractDocx(byte[] data)
    {
        try
        {
            using var doc = WordprocessingDocument.Open(new MemoryStream(data, writable: false), false,
                new OpenSettings { MaxCharactersInPart = MaxDocxPartChars });
            var body = doc.MainDocumentPart?.Document?.Body
                ?? throw new DocumentException("The DOCX file has no document body.");
            var text = new StringBuilder();
            foreach (var p in body.Descendants<W.Paragraph>())
            {
                foreach (var node in p.Descendants())
                {
                    switch (node)
                    {
                        case W.Text t:
                            text.Append(t.Text);
                            break;
                        case W.TabChar:
                            text.Append('\t');
                            break;
                        case W.Break or W.CarriageReturn:
                            text.Append('\n');
                            break;
                    }
                }
                text.Append('\n');
            }
            return text.ToString();
        }
        catch (Exception e) when (e is not (DocumentException or OutOfMemoryException))
        {
            throw new DocumentException("The DOCX file could not be read: it is damaged or too large once unpacked.", e);
        }
    }

    /// <summary>
    /// Overlapping pieces of at most <paramref name="size"/> characters, each repeating about
    /// <paramref name="overlap"/> characters of the previous one, cut at whitespace where possible so
    /// words stay whole. Runs of spaces are collapsed first; paragraph breaks are kept.
    /// </summary>
    public static List<string> Chunk(string text, int size, int overlap)
    {
        text = Normalise(text);
        var chunks = new List<string>();
        var start = 0;
        while (start < text.Length)
        {
            var end = Math.Min(text.Length, start + size);
            if (end < text.Length)
            {
                var half = size / 2;
                var cut = text.LastIndexOfAny([' ', '\n'], end - 1, end - start - half);
                if (cut > start)
                {
                    end = cut + 1;
                }
            }
            var piece = text[start..end].Trim();
            if (piece.Length > 0)
            {
                chunks.Add(piece);
            }
            if (end >= text.Length)
            {
                break;
            }
            var next = end - overlap;
            if (next > start)
            {
                var space = text.IndexOfAny([' ', '\n'], next, end - next);
                next = space >= 0 ? space + 1 : next;
            }
            start = next > start ? next : end;
        }
        return chunks;
    }

    private static string Normalise(string text)
    {
        var sb = new StringBuilder(text.Length);
        var newlines = 0;
        var space = false;
        foreach (var raw in text)
        {
            var c = raw is '\r' or '\f' ? '\n' : raw;
            if (c == '\n')
            {
                newlines++;
                space = false;
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                space = true;
                continue;
            }
            if (sb.Length > 0)
            {
                if (newlines > 0)
                {
                    sb.Append(newlines > 1 ? "\n\n" : "\n");
                }
                else if (space)
                {
                    sb.Append(' ');
                }
            }
            newlines = 0;
            space = false;
            sb.Append(c);
        }
        return sb.ToString();
    }
}

/// <summary>A document that cannot be turned into text; the message is shown to its owner.</summary>
public sealed class DocumentException(string message, Exception? inner = null) : Exception(message, inner);
