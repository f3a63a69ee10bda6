import Foundation
import OCSF
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads a Qualys XML document into a small element tree with Foundation's event-based
/// `XMLParser`, under limits that make hostile XML cheap to reject:
/// - a document that declares entities (`<!ENTITY`) is refused before parsing, so no
///   "billion laughs" expansion can start (Qualys documents never declare any; their DOCTYPE
///   only names an external DTD, which is not fetched: external entities are off);
/// - input that is not valid UTF-8 is refused (FoundationXML traps on such element names);
/// - element depth, element count and total text are capped; the parse stops at the first
///   breach. libxml2 itself refuses a single text node over 10,000,000 bytes.
enum QualysXML {
    /// One element: name, attributes, trimmed text (text and CDATA joined), children.
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
        var children: [Element]

        /// The first child named `name`.
        func child(_ name: String) -> Element? { children.first { $0.name == name } }

        /// Every child named `name`.
        func children(_ name: String) -> [Element] { children.filter { $0.name == name } }

        /// The text of the first child named `name`, when non-empty.
        func text(_ name: String) -> String? {
            guard let text = child(name)?.text, !text.isEmpty else { return nil }
            return text
        }

        /// A JSON rendering: a leaf is its text; an element with children (or attributes) is an
        /// object of children by name (a repeated name becomes an array, in order) and `@name`
        /// attributes, plus `#text` when it also has text.
        var json: JSON {
            if children.isEmpty && attributes.isEmpty { return .string(text) }
            var members: [String: JSON] = [:]
            for (key, value) in attributes { members["@" + key] = .string(value) }
            var grouped: [String: [JSON]] = [:]
            for child in children { grouped[child.name, default: []].append(child.json) }
            for (name, items) in grouped { members[name] = items.count == 1 ? items[0] : .array(items) }
            if !text.isEmpty { members["#text"] = .string(text) }
            return .object(members)
        }
    }

    /// Why a document could not be read; the message never quotes content.
    struct ReadError: Error {
        let message: String
    }

    /// Caps that bound the work and memory one document can cost.
    struct Limits {
        var maximumDepth = 64
        var maximumElements = 2_000_000
        var maximumTextBytes = 128 * 1024 * 1024
    }

    /// The root element of `bytes`, or why there is none.
    static func parse(_ bytes: [UInt8], limits: Limits = Limits()) -> Result<Element, ReadError> {
        if declaresEntities(bytes) {
            return .failure(ReadError(message: "XML declares entities (<!ENTITY), which Qualys documents never do; refused"))
        }
        // FoundationXML traps (force-unwraps a String) when an element or attribute name holds
        // bytes that are not UTF-8, and libxml2 passes such names through; Qualys writes UTF-8,
        // so anything else (or a NUL, which XML forbids) is refused before the parser sees it.
        if bytes.contains(0) || String(validating: bytes, as: UTF8.self) == nil {
            return .failure(ReadError(message: "XML is not valid UTF-8"))
        }
        let parser = XMLParser(data: Data(bytes))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        parser.shouldReportNamespacePrefixes = false
        let builder = TreeBuilder(limits: limits)
        parser.delegate = builder
        let finished = parser.parse()
        if let breach = builder.breach { return .failure(ReadError(message: breach)) }
        if !finished || parser.parserError != nil {
            let code = (parser.parserError as NSError?)?.code ?? 0
            return .failure(ReadError(message: "XML is not well-formed (parser error \(code) near line \(parser.lineNumber))"))
        }
        guard let root = builder.root else { return .failure(ReadError(message: "XML has no root element")) }
        return .success(root)
    }

    /// Whether the bytes contain `<!ENTITY` (any case): entity declarations are the only way
    /// XML text can expand beyond its size, so they are refused rather than trusted to limits.
    static func declaresEntities(_ bytes: [UInt8]) -> Bool {
        let pattern = Array("<!ENTITY".utf8)
        guard bytes.count >= pattern.count else { return false }
        var index = 0
        let last = bytes.count - pattern.count
        while index <= last {
            if bytes[index] == pattern[0] {
                var matched = true
                for offset in 1..<pattern.count {
                    let byte = bytes[index + offset]
                    let lower = (byte >= 65 && byte <= 90) ? byte + 32 : byte
                    let want = pattern[offset]
                    let wantLower = (want >= 65 && want <= 90) ? want + 32 : want
                    if lower != wantLower { matched = false; break }
                }
                if matched { return true }
            }
            index += 1
        }
        return false
    }

    /// Builds the tree from parser events; stops the parse when a limit is crossed.
    /// Used by one parse on one thread, then dropped.
    final class TreeBuilder: NSObject, XMLParserDelegate {
        let limits: Limits
        var stack: [Element] = []
        var root: Element?
        var elements = 0
        var textBytes = 0
        var breach: String?

        init(limits: Limits) {
            self.limits = limits
        }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            elements += 1
            guard stack.count < limits.maximumDepth else { return stop(parser, "XML nests deeper than \(limits.maximumDepth) elements") }
            guard elements <= limits.maximumElements else { return stop(parser, "XML has more than \(limits.maximumElements) elements") }
            stack.append(Element(name: elementName, attributes: attributeDict, text: "", children: []))
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            guard var element = stack.popLast() else { return }
            element.text = FindingSupport.trim(element.text)
            if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            append(parser, string.utf8.count) { $0 += string }
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            append(parser, CDATABlock.count) { $0 += String(decoding: CDATABlock, as: UTF8.self) }
        }

        func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
            nil
        }

        private func append(_ parser: XMLParser, _ count: Int, _ add: (inout String) -> Void) {
            textBytes += count
            guard textBytes <= limits.maximumTextBytes else {
                return stop(parser, "XML text exceeds \(limits.maximumTextBytes) bytes")
            }
            guard !stack.isEmpty else { return }
            add(&stack[stack.count - 1].text)
        }

        private func stop(_ parser: XMLParser, _ reason: String) {
            if breach == nil { breach = reason }
            parser.abortParsing()
        }
    }
}
