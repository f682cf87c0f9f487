export async function main(argv: string[]) { console.log("hi", argv.slice(2)); }
