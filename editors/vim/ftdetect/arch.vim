" .arch files are archdsl network specs
autocmd BufRead,BufNewFile *.arch setfiletype arch
