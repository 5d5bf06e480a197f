import { XMLParser } from 'fast-xml-parser';

/** A managed object reference: `<_this type="VirtualMachine">vm-42</_this>`. */
export class MoRef {
  constructor(
    readonly type: string,
    readonly value: string,
    /** Write `xsi:type="ManagedObjectReference"` too: where the field is `xsd:anyType` (TaskInfo.result, DynamicProperty.val). */
    readonly typed = false,
  ) {}

  toString(): string {
    return `${this.type}:${this.value}`;
  }
}

/**
 * What the envelope writer takes. Plain objects become elements in key order
 * (vim25 is an XSD sequence, so order matters); `$type` sets `xsi:type` and
 * `$text` the text of a typed primitive (`<val xsi:type="xsd:string">`).
 * Arrays repeat the element; undefined fields are left out.
 */
export type XmlValue =
  | string
  | number
  | boolean
  | MoRef
  | undefined
  | readonly XmlValue[]
  | { readonly [key: string]: XmlValue };

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** One element (or several, for an array) with its content, escaped. */
export function writeElement(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((item: XmlValue) => writeElement(name, item)).join('');
  if (value instanceof MoRef) {
    const xsi = value.typed ? ' xsi:type="ManagedObjectReference"' : '';
    return `<${name} type="${escapeXml(value.type)}"${xsi}>${escapeXml(value.value)}</${name}>`;
  }
  if (typeof value !== 'object') return `<${name}>${escapeXml(String(value))}</${name}>`;
  const record = value as { readonly [key: string]: XmlValue };
  const type = record.$type;
  const open = typeof type === 'string' ? `<${name} xsi:type="${escapeXml(type)}">` : `<${name}>`;
  if (record.$text !== undefined) return `${open}${escapeXml(String(record.$text))}</${name}>`;
  let body = '';
  for (const [key, child] of Object.entries(record)) {
    if (key.startsWith('$')) continue;
    body += writeElement(key, child);
  }
  return `${open}${body}</${name}>`;
}

const ENVELOPE_OPEN =
  '<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n<soapenv:Body>';
const ENVELOPE_CLOSE = '</soapenv:Body>\n</soapenv:Envelope>';

/** A request envelope: `<Method xmlns="urn:vim25"><_this>...</_this>args...</Method>`. */
export function requestEnvelope(method: string, self: MoRef, args: Record<string, XmlValue> = {}): string {
  let body = writeElement('_this', self);
  for (const [key, value] of Object.entries(args)) body += writeElement(key, value);
  return `${ENVELOPE_OPEN}<${method} xmlns="urn:vim25">${body}</${method}>${ENVELOPE_CLOSE}`;
}

/** A response envelope, as vCenter sends one. */
export function responseEnvelope(method: string, returnval: XmlValue): string {
  return `${ENVELOPE_OPEN}<${method}Response xmlns="urn:vim25">${writeElement('returnval', returnval)}</${method}Response>${ENVELOPE_CLOSE}`;
}

/** A SOAP fault envelope whose detail holds a typed vim25 fault. */
export function faultEnvelope(
  faultType: string,
  message: string,
  detail: Record<string, XmlValue> = {},
): string {
  let fields = '';
  for (const [key, value] of Object.entries(detail)) fields += writeElement(key, value);
  return `${ENVELOPE_OPEN}<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>${escapeXml(message)}</faultstring><detail><${faultType}Fault xmlns="urn:vim25" xsi:type="${escapeXml(faultType)}">${fields}</${faultType}Fault></detail></soapenv:Fault>${ENVELOPE_CLOSE}`;
}

/** A parsed element: text, or an object of children (`@_type`, `@_xsi:type` for attributes, `#text`). */
export type XmlNode = string | { [key: string]: XmlNode | XmlNode[] | undefined };

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  // Element prefixes vary (soapenv:, soap:, none); only the local names matter.
  transformTagName: (name) => name.replace(/^[^:]*:/, ''),
  // `xsi:type` and a moref's own `type` attribute must stay apart, whatever the prefix.
  transformAttributeName: (name) =>
    name.endsWith(':type') ? `${name.startsWith('@_') ? '@_' : ''}xsi:type` : name,
  processEntities: true,
  htmlEntities: false,
});

export function parseXml(text: string): Record<string, XmlNode> {
  return parser.parse(text) as Record<string, XmlNode>;
}

/** The element's children as a list (one child parses as an object, many as an array). */
export function list(node: XmlNode | XmlNode[] | undefined): XmlNode[] {
  if (node === undefined) return [];
  return Array.isArray(node) ? node : [node];
}

export function child(node: XmlNode | XmlNode[] | undefined, name: string): XmlNode | XmlNode[] | undefined {
  if (node === undefined || typeof node === 'string' || Array.isArray(node)) return undefined;
  return node[name];
}

/** The element's text (`''` for an empty element, undefined when absent). */
export function text(node: XmlNode | XmlNode[] | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (Array.isArray(node)) return text(node[0]);
  if (typeof node === 'string') return node;
  const inner = node['#text'];
  return typeof inner === 'string' ? inner : '';
}

export function attribute(node: XmlNode | XmlNode[] | undefined, name: string): string | undefined {
  if (node === undefined || typeof node === 'string' || Array.isArray(node)) return undefined;
  const value = node[`@_${name}`];
  return typeof value === 'string' ? value : undefined;
}

/** `xsi:type` of an element, without its namespace prefix (`xsd:string` -> `string`). */
export function xsiType(node: XmlNode | XmlNode[] | undefined): string | undefined {
  return attribute(node, 'xsi:type')?.replace(/^[^:]*:/, '');
}

export function readMoRef(node: XmlNode | XmlNode[] | undefined): MoRef | undefined {
  const type = attribute(node, 'type');
  const value = text(node);
  return type === undefined || value === undefined ? undefined : new MoRef(type, value);
}
