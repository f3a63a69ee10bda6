import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A small XML element tree, enough for AWS's query/REST-XML responses.
struct XMLNode: Sendable, Equatable {
    var name: String
    var text: String = ""
    var children: [XMLNode] = []

    /// Parses a document; `nil` when it is not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLNode? {
        let parser = XMLParser(data: Data(bytes))
        let builder = TreeBuilder()
        parser.delegate = builder
        parser.shouldProcessNamespaces = true
        guard parser.parse() else { return nil }
        return builder.root
    }

    /// The first direct child named `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }

    /// Direct children named `name`.
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }

    /// The first element named `name` anywhere below (depth first), or this node itself.
    func find(_ name: String) -> XMLNode? {
        if self.name == name { return self }
        for child in children {
            if let found = child.find(name) { return found }
        }
        return nil
    }
}

/// Collects SAX events into an `XMLNode` tree; lives only for one synchronous `parse()`.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLNode] = []
    var root: XMLNode?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        stack.append(XMLNode(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard var node = stack.popLast() else { return }
        node.text = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
    }
}
