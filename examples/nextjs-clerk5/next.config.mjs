// This app has its own node_modules (Next 14, React 18): nothing to configure.
export default {};
